import { describe, expect, it } from "vitest";
import { backoffDelay } from "../src/link/backoff.js";

const options = { baseMs: 100, maxMs: 30_000 };
const low = () => 0;
const high = () => 0.999;

describe("backoffDelay", () => {
  it("is 0 when the random draw is 0, whatever the attempt", () => {
    for (const attempt of [0, 1, 5, 20, 1000]) expect(backoffDelay(attempt, options, low)).toBe(0);
  });

  it("stays below the ceiling base * 2^attempt when the draw is near 1", () => {
    expect(backoffDelay(0, options, high)).toBe(99);
    expect(backoffDelay(1, options, high)).toBe(199);
    expect(backoffDelay(2, options, high)).toBe(399);
    expect(backoffDelay(3, options, high)).toBe(799);
  });

  it("grows with the attempt until the cap", () => {
    const delays = Array.from({ length: 12 }, (_, attempt) => backoffDelay(attempt, options, high));
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] ?? 0);
    expect(delays[0]).toBeLessThan(delays[5] ?? 0);
  });

  it("is capped at maxMs", () => {
    for (const attempt of [9, 10, 30, 31, 100, 1e9, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(attempt, options, high);
      expect(delay, `attempt ${attempt}`).toBe(Math.floor(0.999 * 30_000));
      expect(delay).toBeLessThanOrEqual(options.maxMs);
    }
  });

  it("is an integer in [0, min(maxMs, base * 2^attempt)] for any draw", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      for (const draw of [0, 0.1, 0.5, 0.75, 0.999, 1 - Number.EPSILON]) {
        const delay = backoffDelay(attempt, options, () => draw);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(Math.min(options.maxMs, options.baseMs * 2 ** attempt));
      }
    }
  });

  it("uses Math.random by default and stays in bounds", () => {
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(4, options);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(1600);
    }
  });
});
