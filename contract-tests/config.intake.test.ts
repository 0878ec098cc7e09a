import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError, loadConfig } from '../src/config.ts';

describe('intake settings', () => {
  test('defaults: public URLs only on the usual ports, downloads capped like uploads, four hours of media', () => {
    const config = loadConfig({ CESAR_MAX_UPLOAD_SIZE_MB: '20' }, '/srv');
    assert.equal(config.urlAllowPrivateNetworks, false);
    assert.deepEqual([...config.urlAllowedPorts].sort((a, b) => a - b), [80, 443, 8080, 8443]);
    assert.equal(config.maxDownloadBytes, 20 * 1024 * 1024);
    assert.equal(config.maxDurationSeconds, 4 * 3600);
  });

  test('the variables are read, and an invalid value names its variable', () => {
    const config = loadConfig(
      { CESAR_URL_ALLOW_PRIVATE_NETWORKS: 'true', CESAR_URL_ALLOWED_PORTS: '443,9000-9001', CESAR_MAX_DOWNLOAD_SIZE_MB: '5', CESAR_MAX_DURATION_SECONDS: '0', CESAR_DOWNLOAD_TIMEOUT_MS: '5000' },
      '/srv',
    );
    assert.equal(config.urlAllowPrivateNetworks, true);
    assert.deepEqual([...config.urlAllowedPorts], [443, 9000, 9001]);
    assert.equal(config.maxDownloadBytes, 5 * 1024 * 1024);
    assert.equal(config.maxDurationSeconds, 0);
    assert.equal(config.downloadTimeoutMs, 5000);
    for (const [variable, value] of [
      ['CESAR_URL_ALLOW_PRIVATE_NETWORKS', 'maybe'],
      ['CESAR_URL_ALLOWED_PORTS', '80,70000'],
      ['CESAR_MAX_DOWNLOAD_SIZE_MB', '-1'],
      ['CESAR_MAX_DURATION_SECONDS', 'an hour'],
      ['CESAR_DOWNLOAD_TIMEOUT_MS', '10'],
    ] as const) {
      assert.throws(() => loadConfig({ [variable]: value }, '/srv'), (error: unknown) => error instanceof ConfigError && error.variable === variable, variable);
    }
  });
});
