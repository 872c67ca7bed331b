import { main } from './cli.js';

// The executable entry: bin/fedmeta-agent runs this file (built, or through tsx from the sources).
process.exitCode = await main(process.argv.slice(2));
