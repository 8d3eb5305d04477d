/** Reconnect delay after `attempt` failures (0-based): doubling from 500 ms up to 30 s, with up
 * to a quarter of jitter so a wall of consoles does not reconnect in step. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 16))
  return Math.round(base * (0.75 + 0.25 * random()))
}
