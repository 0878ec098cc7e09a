import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { isAppError } from '../src/errors.ts';
import { createUrlPolicy, DEFAULT_ALLOWED_PORTS, embeddedIpv4, parsePortList } from '../src/net/url-policy.ts';

const strict = createUrlPolicy({ allowPrivateNetworks: false, allowedPorts: DEFAULT_ALLOWED_PORTS });
const lan = createUrlPolicy({ allowPrivateNetworks: true, allowedPorts: DEFAULT_ALLOWED_PORTS });

function codeOf(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    return isAppError(error) ? error.code : 'not-an-app-error';
  }
}

describe('the URL policy', () => {
  const refused: [url: string, why: string][] = [
    ['ftp://example.com/a.mp3', 'a scheme other than http(s)'],
    ['file:///etc/passwd', 'a file URL'],
    ['gopher://example.com/', 'gopher'],
    ['http://user:pw@example.com/', 'credentials'],
    ['http://user@example.com/', 'a user name'],
    ['http://example.com:22/', 'a port that is not allowed'],
    ['http://127.0.0.1/', 'loopback'],
    ['http://2130706433/', 'loopback in decimal'],
    ['http://0x7f000001/', 'loopback in hex'],
    ['http://0177.0.0.1/', 'loopback in octal'],
    ['http://0x7f.1/', 'loopback in mixed short hex'],
    ['http://127.1/', 'loopback in short form'],
    ['http://0/', 'zero'],
    ['http://0.0.0.0/', 'the unspecified address'],
    ['http://10.1.2.3/', 'a private address'],
    ['http://172.31.255.255/', 'a private address at the end of 172.16/12'],
    ['http://192.168.0.1/', 'a home router'],
    ['http://100.64.0.1/', 'CGNAT'],
    ['http://169.254.169.254/latest/meta-data/', 'the cloud metadata endpoint'],
    ['http://0xa9fea9fe/', 'the metadata endpoint in hex'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://255.255.255.255/', 'broadcast'],
    ['http://[::1]/', 'IPv6 loopback'],
    ['http://[::]/', 'the IPv6 unspecified address'],
    ['http://[::ffff:127.0.0.1]/', 'IPv4-mapped loopback'],
    ['http://[::ffff:7f00:1]/', 'IPv4-mapped loopback in hex groups'],
    ['http://[0:0:0:0:0:ffff:169.254.169.254]/', 'IPv4-mapped metadata, expanded'],
    ['http://[::127.0.0.1]/', 'IPv4-compatible loopback'],
    ['http://[::ffff:0:127.0.0.1]/', 'IPv4-translated loopback'],
    ['http://127.0.0.1./', 'loopback with a trailing dot'],
    ['http://%31%32%37.0.0.1/', 'percent-encoded loopback'],
    ['http://127。0。0。1/', 'loopback with ideographic full stops'],
    ['http://[64:ff9b::10.0.0.1]/', 'NAT64 to a private address'],
    ['http://[2002:7f00:1::]/', '6to4 of loopback'],
    ['http://[fe80::1]/', 'IPv6 link-local'],
    ['http://[fd00::1]/', 'IPv6 unique local'],
    ['http://[fd00:ec2::254]/', 'the AWS IPv6 metadata endpoint'],
    ['http://[ff02::1]/', 'IPv6 multicast'],
    ['http://localhost/', 'localhost by name'],
    ['http://a.b.localhost/', 'a localhost subdomain'],
    ['http://localhost./', 'localhost with a trailing dot'],
  ];
  for (const [url, why] of refused) {
    test(`refuses ${why}: ${url}`, () => {
      assert.equal(codeOf(() => strict.checkUrl(url)), 'url_forbidden');
    });
  }

  test('accepts public names and addresses on the default ports', () => {
    for (const url of ['http://example.com/a.mp3', 'https://example.com:8443/a', 'http://8.8.8.8/', 'http://[2606:4700::1111]/', 'http://[::ffff:8.8.8.8]/']) {
      assert.equal(strict.checkUrl(url).protocol.startsWith('http'), true, url);
    }
  });

  test('a text that is not an absolute URL is an invalid request, not a forbidden one', () => {
    assert.equal(codeOf(() => strict.checkUrl('not a url')), 'invalid_request');
    assert.equal(codeOf(() => strict.checkUrl(`http://example.com/${'a'.repeat(3000)}`)), 'invalid_request');
  });

  test('allowing private networks admits LAN and loopback but never metadata, link-local or multicast', () => {
    for (const url of ['http://10.1.2.3/', 'http://192.168.1.20:8080/', 'http://127.0.0.1/', 'http://localhost/', 'http://[fd00::1]/']) {
      assert.equal(codeOf(() => lan.checkUrl(url)), null, url);
    }
    for (const url of ['http://169.254.169.254/', 'http://[::ffff:169.254.169.254]/', 'http://100.100.100.200/', 'http://0.0.0.0/', 'http://224.0.0.1/', 'http://[fe80::1]/']) {
      assert.equal(codeOf(() => lan.checkUrl(url)), 'url_forbidden', url);
    }
  });

  test('resolved addresses are checked the same way, including IPv6 forms that carry IPv4', () => {
    assert.equal(strict.isAddressAllowed('93.184.215.14'), true);
    assert.equal(strict.isAddressAllowed('127.0.0.1'), false);
    assert.equal(strict.isAddressAllowed('::ffff:10.0.0.1'), false);
    assert.equal(strict.isAddressAllowed('2001:0:4136:e378:8000:63bf:80ff:fffe'), false, 'Teredo carrying 127.0.0.1');
    assert.equal(strict.isAddressAllowed('not-an-ip'), false);
    assert.deepEqual(embeddedIpv4('::ffff:7f00:1'), ['127.0.0.1']);
    assert.deepEqual(embeddedIpv4('2002:a00:1::'), ['10.0.0.1']);
  });

  test('port lists take single ports and ranges and name a bad part', () => {
    assert.deepEqual([...parsePortList('80, 443,8000-8002')], [80, 443, 8000, 8001, 8002]);
    assert.throws(() => parsePortList('80,http'), /"http"/);
    assert.throws(() => parsePortList('0'), /"0"/);
  });
});
