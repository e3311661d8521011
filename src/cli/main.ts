#!/usr/bin/env node
/**
 * The `resnet-ts` command. Exit codes: 0 ok, 1 runtime error, 2 usage error.
 */
import '../parallel/install.js';
import { ResnetTsError } from '../errors.js';
import { UsageError } from './args.js';
import { COMMANDS } from './commands.js';

const HELP = `resnet-ts — ResNets in pure TypeScript

Usage: resnet-ts <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}

Run 'resnet-ts <command> --help' for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version') {
    console.log('resnet-ts 0.1.0');
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`resnet-ts: unknown command '${cmd}'\n\n${HELP}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(c.help);
    return 0;
  }
  try {
    await c.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`resnet-ts ${cmd}: ${e.message}\n\n${c.help}`);
      return 2;
    }
    if (e instanceof ResnetTsError || (e as NodeJS.ErrnoException).code !== undefined) {
      console.error(`resnet-ts ${cmd}: ${(e as Error).message}`);
      return (e as { exitCode?: number }).exitCode ?? 1;
    }
    console.error(`resnet-ts ${cmd}: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
