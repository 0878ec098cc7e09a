import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { jobForm, MULTILINGUAL_MODEL, requireModel, startServer, waitForJob, words } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

interface TranscriptJson {
  text: string;
  language: string;
  language_confidence: number | null;
  task: string;
}

const FOREIGN = [
  { fixture: 'librivox-simplicissimus-de.ogg', language: 'de', spoken: ['hans', 'jakob', 'christoffel', 'von'], foreign: ['der', 'ganz', 'neu', 'abenteuerliche', 'viel'], english: ['the', 'adventurous', 'adventurer', 'new', 'much', 'of'] },
  { fixture: 'fleurs-es-000.ogg', language: 'es', spoken: ['viajeros', 'riesgo', 'clima', 'planes'], foreign: ['viajeros', 'riesgo', 'clima', 'planes', 'que'], english: ['travelers', 'travellers', 'risk', 'climate', 'weather', 'plans', 'area'] },
  { fixture: 'fleurs-fr-000.ogg', language: 'fr', spoken: ['terrain', 'montagneux', 'malveillant', 'malveillants', 'accident'], foreign: ['montagneux', 'malveillant', 'malveillants', 'lieu', 'que'], english: ['accident', 'mountainous', 'terrain', 'caused', 'fire', 'malicious'] },
];

describe('languages with a multilingual model', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ CESAR_MAX_WORKERS: '2', CESAR_DEFAULT_MODEL: MULTILINGUAL_MODEL });
  });
  after(() => server.close());

  async function transcribe(fixture: string, fields: Record<string, string>): Promise<TranscriptJson> {
    const { client } = server;
    const id = ((await client.post('/jobs', { body: await jobForm(fixture, { model: MULTILINGUAL_MODEL, ...fields }) })).json as JobBody).id;
    const done = await waitForJob(client, id, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    return (await client.get(`/jobs/${id}/result?format=json`)).json as TranscriptJson;
  }

  test('German, Spanish and French speech is detected as such, with the confidence of the detection', async (t) => {
    if (!requireModel(t, MULTILINGUAL_MODEL)) {
      return;
    }
    const results = await Promise.all(FOREIGN.map((entry) => transcribe(entry.fixture, {})));
    FOREIGN.forEach((entry, index) => {
      const result = results[index];
      assert.ok(result);
      assert.equal(result.language, entry.language, `${entry.fixture}: ${result.text}`);
      assert.ok(result.language_confidence !== null && result.language_confidence > 0.5 && result.language_confidence <= 1, `confidence ${result.language_confidence}`);
      const heard = words(result.text);
      assert.ok(entry.spoken.some((word) => heard.includes(word)), `${entry.fixture} transcribed in its language: ${result.text}`);
    });
  });

  test('a forced language is used as given, and detection confidence is then null', async (t) => {
    if (!requireModel(t, MULTILINGUAL_MODEL)) {
      return;
    }
    const result = await transcribe('fleurs-es-000.ogg', { language: 'es' });
    assert.equal(result.language, 'es');
    assert.equal(result.language_confidence, null);
    assert.ok(words(result.text).includes('viajeros'), result.text);
  });

  test('task=translate gives English words for German, Spanish and French speech', async (t) => {
    if (!requireModel(t, MULTILINGUAL_MODEL)) {
      return;
    }
    const results = await Promise.all(FOREIGN.map((entry) => transcribe(entry.fixture, { task: 'translate' })));
    FOREIGN.forEach((entry, index) => {
      const result = results[index];
      assert.ok(result);
      assert.equal(result.task, 'translate');
      const heard = words(result.text);
      const english = entry.english.filter((word) => heard.includes(word));
      assert.ok(english.length >= 2, `${entry.fixture} translated to English: ${result.text}`);
      assert.ok(!entry.foreign.some((word) => heard.includes(word)), `no ${entry.language} words left: ${result.text}`);
    });
  });
});
