import type { AccessWindow, Weekday } from "./types.js";

const WEEKDAYS: readonly Weekday[] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const formatters = new Map<string, Intl.DateTimeFormat>();

function localTime(now: Date, timezone: string): { day: Weekday; minutes: number } {
  let format = formatters.get(timezone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: timezone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    formatters.set(timezone, format);
  }
  const parts = format.formatToParts(now);
  const weekday = (parts.find((part) => part.type === "weekday")?.value ?? "").toLowerCase().slice(0, 3) as Weekday;
  const hour = Number(parts.find((part) => part.type === "hour")?.value);
  const minute = Number(parts.find((part) => part.type === "minute")?.value);
  return { day: WEEKDAYS.includes(weekday) ? weekday : "sun", minutes: hour * 60 + minute };
}

function minutesOf(time: string): number {
  const [hours, minutes] = time.split(":").map(Number);
  return (hours ?? 0) * 60 + (minutes ?? 0);
}

/**
 * If `now` falls in the window, the milliseconds until the window closes; otherwise undefined.
 * A window past midnight (to < from) belongs to the day it starts on.
 */
export function windowRemaining(window: AccessWindow, now: Date): number | undefined {
  const local = localTime(now, window.timezone ?? "UTC");
  const from = minutesOf(window.from);
  const to = minutesOf(window.to);
  const secondsIntoMinute = now.getUTCSeconds() * 1000 + now.getUTCMilliseconds();
  if (from <= to) {
    if (!window.days.includes(local.day) || local.minutes < from || local.minutes >= to) return undefined;
    return (to - local.minutes) * 60_000 - secondsIntoMinute;
  }
  if (local.minutes >= from && window.days.includes(local.day)) return (24 * 60 - local.minutes + to) * 60_000 - secondsIntoMinute;
  const yesterday = WEEKDAYS[(WEEKDAYS.indexOf(local.day) + 6) % 7] as Weekday;
  if (local.minutes < to && window.days.includes(yesterday)) return (to - local.minutes) * 60_000 - secondsIntoMinute;
  return undefined;
}
