/** Seeded choices for the chaos suite: every random decision comes from one of these, so a seed replays. */
import { mulberry32 } from '../support/prng.js';

/** Rng draws numbers, picks and durations from a seeded stream (mulberry32). */
export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** float is uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** int is uniform over the integers lo..hi (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** between is uniform in [lo, hi), rounded to milliseconds when used as a duration. */
  between(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  /** chance is true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** pick returns one element; the array must not be empty. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** weighted picks a key by its weight (weights > 0). */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let x = this.next() * total;
    for (const [v, w] of entries) {
      x -= w;
      if (x < 0) return v;
    }
    return entries[entries.length - 1]![0];
  }
}

/** streamSeed derives an independent seed for one consumer (faults, workload) from the run's seed. */
export function streamSeed(seed: number, stream: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
}
