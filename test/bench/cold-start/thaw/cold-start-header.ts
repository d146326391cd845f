/**
 * The host's `x-thaw-cold-start` header (host/pool/cold-start.ts on the host branch):
 * `resolve=12.3;mount=3.1;prefetch=0.0;sandbox=80.2;load=150.7;first=4.0;total=251.9`, in ms.
 * Parsed here rather than imported so the benchmark keeps building while the host is elsewhere;
 * unknown names are kept, values that are not numbers are dropped.
 */
export function parseColdStartHeader(value: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const part of value.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const n = Number(part.slice(eq + 1).trim())
    if (Number.isFinite(n)) out[part.slice(0, eq).trim()] = n
  }
  return out
}
