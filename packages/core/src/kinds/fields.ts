import type { Provider } from '../catalog/schema.js';
import { InvalidInput } from '../errors.js';

const MAX_VALUE = 8192;

/**
 * The values of a form (`api_key`, `basic`, `jwt`), checked against the fields the provider
 * declares: each required one present, each matching its pattern, nothing undeclared. Errors name
 * the field and never repeat a value.
 */
export function readFields(provider: Provider, input: unknown): Record<string, string> {
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidInput(`Provider "${provider.id}" takes the fields ${names(provider)}: pass them as an object.`, 'fields');
  }
  const given = input as Record<string, unknown>;
  const declared = new Set(provider.fields.map((f) => f.name));
  for (const name of Object.keys(given)) {
    if (!declared.has(name))
      throw new InvalidInput(`"${name}" is not a field of provider "${provider.id}" (${names(provider)}).`, `fields.${name}`);
  }
  const out: Record<string, string> = {};
  for (const field of provider.fields) {
    const value = given[field.name];
    if (value === undefined || value === '') {
      if (field.optional) continue;
      throw new InvalidInput(`${field.label} (${field.name}) is required${field.help ? `: ${field.help}` : ''}.`, `fields.${field.name}`);
    }
    // eslint-disable-next-line no-control-regex
    const control = field.multiline ? /[\u0000-\u0008\u000b-\u001f\u007f]/ : /[\u0000-\u001f\u007f]/;
    if (typeof value !== 'string' || value.length > MAX_VALUE || control.test(value)) {
      throw new InvalidInput(
        `${field.label} (${field.name}) must be text of at most ${MAX_VALUE} characters without control characters.`,
        `fields.${field.name}`,
      );
    }
    if (field.pattern && !new RegExp(`^(?:${field.pattern})$`).test(value)) {
      throw new InvalidInput(
        `${field.label} (${field.name}) does not have the expected format${field.help ? `: ${field.help}` : ''}.`,
        `fields.${field.name}`,
      );
    }
    out[field.name] = value;
  }
  return out;
}

/** The values that may appear in URLs and listings: those of fields not marked secret. */
export function publicFields(provider: Provider, fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(provider.fields.filter((f) => !f.secret && fields[f.name] !== undefined).map((f) => [f.name, fields[f.name]!]));
}

/** Replaces every secret value in a text (a provider's error message may quote the key it refused). */
export function redact(provider: Provider, fields: Record<string, string>, text: string): string {
  let out = text;
  for (const field of provider.fields) {
    const value = fields[field.name];
    if (field.secret && value && value.length >= 4) out = out.split(value).join('[redacted]');
  }
  return out;
}

const names = (provider: Provider) => provider.fields.map((f) => f.name).join(', ') || 'none';
