/** `npm run temporal:build-server`: makes sure the Temporal server of the pinned release, its schema tool and the CLI exist in the tools folder (built when missing); prints where. */
import { settings } from '../../config/settings';
import { locateTemporalServer, serverVersion } from './temporal-server';

const tools = locateTemporalServer({ toolsDir: settings().TOOLS_DIR });
console.log(`${serverVersion(tools)}: ${tools.binDir}`);
