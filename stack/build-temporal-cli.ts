/** `npm run temporal:build`: makes sure the Temporal CLI exists (builds it into the tools folder when missing) and prints its path. */
import { settings } from '../config/settings';
import { locateTemporalCli } from './temporal-cli';

const s = settings();
console.log(locateTemporalCli({ explicit: s.TEMPORAL_CLI, toolsDir: s.TOOLS_DIR }));
