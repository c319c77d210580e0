// The CLI's commands and options as its --help prints them, for checking the command lines the Kubeflow
// files run against the real CLI (dist/, as the image runs it).
import { execFileSync } from 'node:child_process';
import { CLI } from './ir.js';

const help = (args: string[]) => execFileSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8', timeout: 30_000 });

let commands: Set<string> | null = null;
export function cliCommands(): Set<string> {
  commands ??= new Set([...help([]).matchAll(/^ {2}([a-z][-a-z]*)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help'));
  return commands;
}

/** flag → whether it takes a value ('required' <x>, 'optional' [x]) or is a switch. */
export type OptionKinds = Map<string, 'required' | 'optional' | 'switch'>;
const options = new Map<string, OptionKinds>();
export function cliOptions(command: string): OptionKinds {
  let kinds = options.get(command);
  if (!kinds) {
    kinds = new Map();
    for (const m of help([command]).matchAll(/^ {2}(?:-\w, )?(--[a-z][-a-z0-9]*)(?: ([<[])[^>\]]*[>\]])?/gm)) kinds.set(m[1], m[2] === '<' ? 'required' : m[2] === '[' ? 'optional' : 'switch');
    options.set(command, kinds);
  }
  return kinds;
}

/** Problems of `recserve <argv>` against the help: unknown command or option, a value missing or extra. */
export function argvErrors(argv: string[], where: string): string[] {
  const [command, ...rest] = argv;
  if (!cliCommands().has(command)) return [`${where}: recserve has no command "${command}"`];
  const kinds = cliOptions(command);
  const errors: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const kind = kinds.get(flag.split('=')[0]);
    const next = rest[i + 1];
    if (!kind) {
      errors.push(`${where}: \`recserve ${command}\` has no option ${flag}`);
      if (next !== undefined && !next.startsWith('--')) i++;
      continue;
    }
    if (kind === 'required' && !flag.includes('=')) {
      if (next === undefined || next.startsWith('--')) errors.push(`${where}: ${flag} needs a value`);
      else i++;
    } else if (kind === 'switch' && next !== undefined && !next.startsWith('--')) {
      errors.push(`${where}: ${flag} takes no value, "${next}" follows it`);
      i++;
    }
    else if (kind === 'optional' && next !== undefined && !next.startsWith('--')) i++;
  }
  return errors;
}
