/**
 * What a provider is for, so the catalog can be browsed and searched by area (`provider ls
 * --category`, docs/providers.md's sections). One category per provider: the one a developer
 * looking for it would try first.
 */
export const CATEGORIES = [
  'accounting',
  'ai',
  'analytics',
  'cloud',
  'communication',
  'crm',
  'design',
  'developer-tools',
  'ecommerce',
  'email',
  'files',
  'forms',
  'hr',
  'identity',
  'marketing',
  'media',
  'monitoring',
  'payments',
  'productivity',
  'project-management',
  'scheduling',
  'social',
  'support',
] as const;

/** One of {@link CATEGORIES}. */
export type Category = (typeof CATEGORIES)[number];
