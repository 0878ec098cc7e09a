import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { loadSpec } from '../src/http/app.ts';
import { requireTool } from './support/cli.ts';
import { requireModel, startServer, tempDir } from './support/harness.ts';

const CHROMIUM = process.env.CESAR_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Every operation of the spec as Swagger UI titles it: paths by route, top-level webhooks by name. */
function specOperations(): string[] {
  const spec = loadSpec() as ReturnType<typeof loadSpec> & { webhooks?: Record<string, object> };
  const operations: string[] = [];
  for (const [route, item] of [...Object.entries(spec.paths ?? {}), ...Object.entries(spec.webhooks ?? {})]) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']) {
      if (item && method in item) {
        operations.push(`${method.toUpperCase()} ${route}`);
      }
    }
  }
  return operations.sort();
}

describe('the Swagger UI at /docs, in headless Chromium', () => {
  test('renders every operation of the spec, and "Try it out" on GET /health shows a 200', async (t) => {
    if (!requireModel(t) || !requireTool(t, `Chromium at ${CHROMIUM}`, existsSync(CHROMIUM), 'apt-get install chromium')) {
      return;
    }
    const server = await startServer();
    const profile = await tempDir('cesar-chromium-');
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    t.after(async () => {
      await context.close();
      await server.close();
      await rm(profile, { recursive: true, force: true });
    });
    const page = await context.newPage();
    await page.goto(`${server.client.baseUrl}/docs/`);
    await page.locator('.opblock').first().waitFor();
    const blocks = page.locator('.opblock');
    const rendered: string[] = [];
    for (let index = 0; index < (await blocks.count()); index += 1) {
      const block = blocks.nth(index);
      rendered.push(`${await block.locator('.opblock-summary-method').textContent()} ${await block.locator('.opblock-summary-path').getAttribute('data-path')}`);
    }
    assert.deepEqual(rendered.sort(), specOperations());

    const health = page.locator('.opblock', { has: page.locator('.opblock-summary-path[data-path="/health"]') });
    await health.locator('.opblock-summary').click();
    await health.locator('button.try-out__btn').click();
    await health.locator('button.execute').click();
    const status = health.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    assert.equal((await status.textContent())?.trim(), '200');
    assert.match((await health.locator('.live-responses-table tbody .response-col_description').first().textContent()) ?? '', /"status": "ready"/);
  });
});
