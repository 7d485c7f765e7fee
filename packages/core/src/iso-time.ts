/**
 * Epoch milliseconds as an ISO 8601 UTC string, the same text as `new Date(ms).toISOString()`,
 * without the Date: a page of 100 identity summaries formats about 300 times, and
 * `Date#toISOString` (an object per call, then the runtime's formatter) took about a tenth of the
 * server's CPU for such a page in bench:scale; this is about three times faster.
 */

const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00.000Z: from here on (and before 1970) `toISOString` is used, which writes six-digit years. */
const END_OF_FOUR_DIGIT_YEARS = 253_402_300_800_000;

const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const three = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/** `new Date(ms).toISOString()`, for whole milliseconds; throws RangeError as it does for an invalid time. */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < END_OF_FOUR_DIGIT_YEARS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  // The proleptic Gregorian date of a day count, counted in 400-year eras starting on 1 March, so
  // that the leap day falls at the end of the counted year (the civil-from-days method of
  // H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
  const shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${year}-${two(month)}-${two(day)}T${two(hours)}:${two(minutes)}:${two(seconds)}.${three(rest - seconds * 1000)}Z`;
}
