import { randomBytes } from 'node:crypto';

/** A time-ordered id: sorting by id sorts by creation, so ids work as paging cursors. */
export const timeOrderedId = (prefix: string, now = Date.now()) =>
  `${prefix}${now.toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
