// Test entry for the nft commands (render, apply, list) with the CLI's own
// failure handling, until they are reachable through src/bin/nodewall.js.
// Run inside the lab's node namespace: `ip netns exec NS node nft-cli.js ...`.

import yargs from 'yargs';
import { applyCommand } from '../../src/cli/commands/apply.js';
import { listCommand } from '../../src/cli/commands/list.js';
import { renderCommand } from '../../src/cli/commands/render.js';
import { reportFailure } from '../../src/cli/main.js';
import { exitCodes } from '../../src/cli/options.js';

try {
  let usage = false;
  await yargs(process.argv.slice(2))
    .scriptName('nodewall')
    .command(renderCommand)
    .command(applyCommand)
    .command(listCommand)
    .demandCommand(1)
    .strict()
    .fail((msg, err) => {
      if (err) throw err;
      usage = true;
      process.stderr.write(`nodewall: ${msg}\n`);
    })
    .parseAsync();
  if (usage) process.exitCode = exitCodes.usage;
} catch (err) {
  process.exitCode = reportFailure(err);
}
