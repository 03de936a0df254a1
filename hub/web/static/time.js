// Times as an agent reads them: on the office's wall clock (the hub's
// [workspace] timezone, whatever the laptop itself is set to), and in the
// conversation list relative to now ("5 phút trước"), the exact time on hover.
import { lang, t } from './i18n.js';

let zone;

export function setZone(value) { zone = value || undefined; }

function locale() { return lang() === 'vi' ? 'vi-VN' : 'en-GB'; }

export function when(iso) {
  return new Date(iso).toLocaleString(locale(), { dateStyle: 'short', timeStyle: 'short', timeZone: zone });
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
