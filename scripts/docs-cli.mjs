// Writes the CLI synopsis generated from the command tree into README.md
// (between its cli-synopsis markers). Run after changing a command's options.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { withSynopsis } = await import(path.join(root, 'dist', 'ts', 'cli', 'synopsis.js'));
const file = path.join(root, 'README.md');
const next = withSynopsis(readFileSync(file, 'utf8'));
writeFileSync(`${file}.tmp`, next);
renameSync(`${file}.tmp`, file);
console.error('README.md: CLI synopsis written');
