import { runCommand } from '../os/run-command.ts'

/**
 * A node's veth puts it on a link with the host, and Linux answers on any local address from
 * any interface: without a filter, a node could connect to every host service bound to 0.0.0.0
 * or to another node's host-side address. One nftables table per sandbox instance, matching its
 * veths by name prefix, lets the host open connections to nodes (the node's SYN-ACK and later
 * segments carry ACK) and refuses anything a node starts: a bare SYN gets a TCP reset, other
 * protocols an ICMP error, so a node's connect fails at once instead of hanging. Stateless (no
 * conntrack). Nothing is forwarded from a node, even if the host enables ip_forward.
 */
export function firewallTableName(instanceId: string): string {
  return `thaw_${instanceId}`
}

export async function installHostFirewall(instanceId: string, vethPrefix: string): Promise<void> {
  const table = firewallTableName(instanceId)
  const nodes = `iifname "${vethPrefix}*"`
  const ruleset = [
    `table inet ${table} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    ${nodes} tcp flags & (syn | ack) == syn reject with tcp reset`,
    `    ${nodes} meta l4proto != tcp reject`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    ${nodes} drop`,
    '  }',
    '}',
    '',
  ].join('\n')
  await runCommand('nft', ['-f', '-'], { input: ruleset, timeoutMs: 30_000 })
}

/** Removes the instance's table; fine if it is not there. */
export async function removeHostFirewall(instanceId: string): Promise<void> {
  const table = firewallTableName(instanceId)
  const { stdout } = await runCommand('nft', ['list', 'tables', 'inet'], { timeoutMs: 30_000 })
  if (!stdout.split('\n').some((l) => l.trim() === `table inet ${table}`)) return
  await runCommand('nft', ['delete', 'table', 'inet', table], { timeoutMs: 30_000 })
}

/** Tables of thaw instances, by instance id, for the leftover cleanup. */
export async function firewallInstances(): Promise<string[]> {
  const { stdout } = await runCommand('nft', ['list', 'tables', 'inet'], { timeoutMs: 30_000 })
  return [...stdout.matchAll(/^table inet thaw_(\w+)$/gm)].map((m) => m[1]!)
}
