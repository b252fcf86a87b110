// Kernel-side observer of the scale bench (bench/scale-bench.ts): runs
// `nft monitor` (text) in the network namespace it was started in, stamps
// every line with process.hrtime.bigint() (CLOCK_MONOTONIC, comparable with
// the measuring process's stamps) as soon as it is read, and writes
// `NANOS<TAB>LINE` lines to its stdout.
//
// A process of its own: the measuring process runs the agent, whose event loop
// is busy during a pass, so stamps taken there would be late. All lines of one
// read chunk get that chunk's stamp (they arrived together).
//
//   node nft-monitor-child.js NFT_PATH [KEEP_REGEX]
//
// KEEP_REGEX: only lines matching it are passed on (the `# new generation`
// lines always are, and so is the first line of each transaction: the bench
// takes a transaction's stamp from it, bench/nft-monitor-marks.ts), so that
// the measuring process does not parse the tens of thousands of element lines
// a structural apply at 100k pods brings (its CPU per event is measured). Exits, stopping nft, when its stdin closes (the
// measuring process ended or closed it) or on SIGTERM; exits with nft.

import { spawn } from 'node:child_process';
import { LineSplitter } from '../src/agent/line-splitter.js';
import { formatStamped, isGenerationLine } from './nft-monitor-marks.js';

const nftPath = process.argv[2];
if (nftPath === undefined) {
  process.stderr.write('usage: nft-monitor-child NFT_PATH [KEEP_REGEX]\n');
  process.exit(2);
}
const keep = process.argv[3] === undefined || process.argv[3] === '' ? undefined : new RegExp(process.argv[3]);

const nft = spawn(nftPath, ['monitor'], { stdio: ['ignore', 'pipe', 'pipe'] });
// nft 1.0.6 warns about its own set cache ("Received event for an unknown set.", "Unable to cache
// set_elem. Set not found.") when a structural apply adds and deletes sets, anonymous ones of rules
// included; the lines are printed all the same. Not the bench's business; anything else goes to stderr.
const cacheWarnings: ReadonlySet<string> = new Set(['W: Received event for an unknown set.', 'W: Unable to cache set_elem. Set not found.']);
const errLines = new LineSplitter(64 * 1024, (line) => {
  if (!cacheWarnings.has(line)) process.stderr.write(`nft monitor: ${line}\n`);
});
nft.stderr.on('data', (c: Buffer) => errLines.push(c));
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  if (nft.exitCode === null && nft.signalCode === null) nft.kill('SIGTERM');
};

let out: string[] = [];
let stamp = 0n;
/** The next line opens a transaction: passed on whatever the filter says, so that its stamp is the transaction's. */
let opensTransaction = true;
const splitter = new LineSplitter(1 << 20, (line) => {
  const generation = isGenerationLine(line);
  if (keep === undefined || generation || opensTransaction || keep.test(line)) out.push(formatStamped(stamp, line));
  opensTransaction = generation;
});
nft.stdout.on('data', (chunk: Buffer) => {
  stamp = process.hrtime.bigint();
  splitter.push(chunk);
  if (out.length > 0) {
    process.stdout.write(out.join(''));
    out = [];
  }
});
nft.on('error', (err) => {
  process.stderr.write(`nft-monitor-child: ${err.message}\n`);
  process.exit(1);
});
nft.on('exit', (code, signal) => {
  if (!stopping) process.stderr.write(`nft-monitor-child: nft monitor exited (${signal ?? code})\n`);
  // Flush what is written, then go.
  process.stdout.write('', () => process.exit(stopping ? 0 : 1));
});

process.stdin.resume();
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.on('error', stop);
