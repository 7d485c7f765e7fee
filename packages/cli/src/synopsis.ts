import type { Command, Option } from 'commander';

/** `--flag <value>`, `--flag`, or `--flag <value...>` as commander declared it. */
function optionUsage(option: Option): string {
  const flag = option.long ?? option.short ?? option.flags;
  const value = option.flags.match(/[<[][^>\]]+[>\]]/)?.[0];
  return value ? `${flag} ${value}` : flag;
}

function leafLine(path: string[], command: Command): string {
  const parts = ['everyauth', ...path];
  for (const argument of command.registeredArguments) {
    const name = `${argument.name()}${argument.variadic ? '...' : ''}`;
    parts.push(argument.required ? `<${name}>` : `[${name}]`);
  }
  for (const option of command.options as readonly Option[]) {
    if (option.hidden || option.long === '--help') continue;
    parts.push(option.mandatory ? optionUsage(option) : `[${optionUsage(option)}]`);
  }
  return parts.join(' ');
}

/**
 * One line per runnable command, with its arguments and options, from the command tree itself:
 * `everyauth --help` prints it and the README shows it, so the two cannot drift apart (a test
 * compares them). The global options are listed once, at the end.
 */
export function synopsis(program: Command): string[] {
  const lines: string[] = [];
  const walk = (command: Command, path: string[]) => {
    const subcommands = command.commands.filter((c) => c.name() !== 'help');
    if (subcommands.length === 0) {
      lines.push(leafLine(path, command));
      return;
    }
    for (const sub of subcommands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  const globals = (program.options as readonly Option[])
    .filter((o) => !['--help', '--version'].includes(o.long ?? ''))
    .map((o) => `[${o.flags}]`);
  lines.push(`Global options, before or after the command: ${globals.join(' ')}`);
  return lines;
}
