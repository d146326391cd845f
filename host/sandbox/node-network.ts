import { access, mkdir, readdir } from 'node:fs/promises'
import { runCommand } from '../os/run-command.ts'
import type { SubnetLease } from './subnet-leases.ts'
import { createUserAndNetworkNamespaces, type IdRange } from './user-namespace.ts'

/**
 * A node's network: a named network namespace (/run/netns/<name>, as `ip netns add` makes it)
 * holding `lo` and `eth0`, the node end of a veth pair whose other end stays in the host's
 * namespace with the /30's host address. Nothing is routed beyond the pair (no default route,
 * no NAT): the host reaches the node, the node reaches nothing but the host side, which the
 * host firewall then refuses (host-firewall.ts).
 *
 * runc joins the namespace by path (config.json linux.namespaces network.path). Never
 * `ip netns exec` into it: that remounts /sys and hides the cgroup v1 mounts runc needs; enter
 * with `nsenter --net=<path>` instead.
 */
export const NETNS_DIR = '/run/netns'

export interface NodeNetworkNames {
  netns: string
  /** At most 15 bytes (IFNAMSIZ - 1). */
  hostVeth: string
}

export function netnsPath(netns: string): string {
  return `${NETNS_DIR}/${netns}`
}

/**
 * With `userns`, the namespace is made inside a new user namespace kept at `userns.file`
 * (user-namespace.ts), one more process; without, by `ip netns add`.
 */
export async function createNodeNetwork(
  names: NodeNetworkNames,
  lease: SubnetLease,
  signal?: AbortSignal,
  userns?: { file: string; range: IdRange },
): Promise<void> {
  const cidr = (ip: string) => `${ip}/${lease.prefixLength}`
  if (userns) {
    await mkdir(NETNS_DIR, { recursive: true })
    const files = { userns: userns.file, netns: netnsPath(names.netns) }
    await createUserAndNetworkNamespaces(files, userns.range, signal)
  }
  // Two processes in all: one batch in the host namespace, one inside the node's. The node end
  // is created directly in the new namespace, so its name (eth0) never meets the host's names.
  await runCommand('ip', ['-batch', '-'], {
    signal,
    input: [
      ...(userns ? [] : [`netns add ${names.netns}`]),
      `link add ${names.hostVeth} type veth peer name eth0 netns ${names.netns}`,
      `addr add ${cidr(lease.hostIp)} dev ${names.hostVeth}`,
      `link set ${names.hostVeth} up`,
      '',
    ].join('\n'),
  })
  await runCommand('ip', ['-n', names.netns, '-batch', '-'], {
    signal,
    input: [
      'link set lo up',
      `addr add ${cidr(lease.nodeIp)} dev eth0`,
      'link set eth0 up',
      '',
    ].join('\n'),
  })
}

/**
 * Makes a TCP port of the node's loopback reachable on its eth0: a server in the node that
 * listens on 127.0.0.1 only (Azure runs the Functions host and a custom handler in one
 * container, so handlers often do) answers the host at `<node ip>:<port>`. A DNAT rule in the
 * node's own namespace rewrites the destination to 127.0.0.1, which the kernel drops as a
 * martian on a non-loopback interface unless route_localnet is set on eth0 (ip-sysctl.rst
 * route_localnet). Servers on all addresses are reached the same way. One process: nsenter
 * into the namespace, write the sysctl (/proc/sys/net is the writer's namespace's), then nft.
 */
export async function forwardPortToLoopback(
  netns: string,
  port: number,
  signal?: AbortSignal,
): Promise<void> {
  const ruleset = [
    'table ip thaw_node {',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    iifname "eth0" tcp dport ${port} dnat to 127.0.0.1:${port}`,
    '  }',
    '}',
    '',
  ].join('\n')
  await runCommand(
    'nsenter',
    [
      `--net=${netnsPath(netns)}`,
      'sh',
      '-c',
      'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && exec nft -f -',
    ],
    { signal, input: ruleset },
  )
}

/**
 * Deletes the veth (both ends at once, synchronously: waiting for the namespace's asynchronous
 * teardown to take it could leave the address in use when the /30 is leased again) and the
 * namespace. Whatever is already gone is skipped.
 */
export async function destroyNodeNetwork(names: NodeNetworkNames): Promise<void> {
  if (await present(`/sys/class/net/${names.hostVeth}`)) {
    await runCommand('ip', ['link', 'del', names.hostVeth]).catch(async (err: unknown) => {
      if (await present(`/sys/class/net/${names.hostVeth}`)) throw err
    })
  }
  if (await present(netnsPath(names.netns))) {
    await runCommand('ip', ['netns', 'del', names.netns])
  }
}

/** Names of namespaces and host-side veths that start with the given prefixes. */
export async function networkLeftovers(netnsPrefix: string, vethPrefix: string) {
  const [netns, links] = await Promise.all([
    readdir(NETNS_DIR).catch(() => []),
    readdir('/sys/class/net').catch(() => []),
  ])
  return {
    netns: netns.filter((n) => n.startsWith(netnsPrefix)),
    veths: links.filter((n) => n.startsWith(vethPrefix)),
  }
}

async function present(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}
