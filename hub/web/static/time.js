// Times as an agent reads them: on the office's wall clock (the hub's
// [workspace] timezone, whatever the laptop itself is set to), and in the
// conversation list relative to now ("5 phút trước"), the exact time on hover.
import { lang, t } from './i18n.js';

let zone;

export function setZone(value) { zone = value || undefined; }

function locale() { return lang() === 'vi' ? 'vi-VN' : 'en-GB'; }

// `timeZone`: another zone than the office's (a report's period names its own).
export function when(iso, timeZone = zone) {
  return new Date(iso).toLocaleString(locale(), { dateStyle: 'short', timeStyle: 'short', timeZone });
}

const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60]];

export function ago(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto', style: 'short' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return format.format(Math.trunc(seconds / size), unit);
  }
  return t('just_now');
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

// What the office's wall clock reads at `date`.
export function wallClock(date) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', weekday: 'short',
    year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
  }).formatToParts(date);
  const part = (type) => parts.find((p) => p.type === type).value;
  return {
    year: Number(part('year')), month: Number(part('month')), day: Number(part('day')),
    hour: Number(part('hour')), minute: Number(part('minute')), weekday: WEEKDAYS.indexOf(part('weekday')),
  };
}

// The moment the office's wall clock reads that date and time (days past the
// month's end roll over). Twice round: right across a daylight-saving change too.
export function officeTime(year, month, day, hour, minute = 0) {
  const wanted = Date.UTC(year, month - 1, day, hour, minute);
  let guess = wanted;
  for (let round = 0; round < 2; round += 1) {
    const shown = wallClock(new Date(guess));
    guess += wanted - Date.UTC(shown.year, shown.month - 1, shown.day, shown.hour, shown.minute);
  }
  return new Date(guess);
}

// Snoozes as agents say them, on the office's clock: "sáng mai" is 8:00 there.
export function snoozeUntil(choice, now = new Date()) {
  const today = wallClock(now);
  if (choice === 'hours') return new Date(now.getTime() + 3 * 3600 * 1000);
  if (choice === 'tomorrow') return officeTime(today.year, today.month, today.day + 1, 8);
  if (choice === 'next_week') {
    const days = (8 - today.weekday) % 7 || 7; // the coming Monday
    return officeTime(today.year, today.month, today.day + days, 8);
  }
  return null;
}

// A datetime-local field's "2026-11-30T14:00", read on the office's clock.
export function officeInput(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value);
  if (!match) return null;
  const [year, month, day, hour, minute] = match.slice(1).map(Number);
  return officeTime(year, month, day, hour, minute);
}
