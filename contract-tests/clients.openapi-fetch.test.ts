import path from 'node:path';
import { describe, test } from 'node:test';

import { REPO_ROOT, runCommand } from './support/cli.ts';
import { assertFlow, assertSucceeded } from './support/generated-clients.ts';
import { FIXTURES, requireModel, startServer, TEST_MODEL } from './support/harness.ts';

describe('a client on openapi-fetch, typed by openapi-typescript (generated/openapi.d.ts)', () => {
  test('uploads a file, polls, gets the SRT and the typed JSON transcript, lists, is refused cancelling a finished job with a 409 problem, and deletes', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const server = await startServer();
    t.after(() => server.close());
    // Type-checked with the rest of the repository (npm run typecheck), run here as it is.
    const flow = path.join(REPO_ROOT, 'examples', 'typescript', 'flow.ts');
    const result = await runCommand(process.execPath, [flow, server.client.baseUrl, path.join(FIXTURES, 'jfk.ogg'), TEST_MODEL]);
    assertSucceeded('the flow', result);
    assertFlow(result.stdout);
  });
});
