/** The services both demo modes configure at the stand-ins. */
export const SERVICES = [
  { id: 'asana', provider: 'asana', scopes: ['default'] },
  { id: 'google', provider: 'google', scopes: ['openid', 'email', 'profile', 'https://www.googleapis.com/auth/calendar.events'] },
];
