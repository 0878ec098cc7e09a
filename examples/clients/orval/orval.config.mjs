// orval's fetch client calls the paths of the spec, which are relative (`servers: [{url: /}]`): the server's
// address is given here, when the client is generated.
//   ORVAL_BASE_URL=http://127.0.0.1:8000 npx orval --config examples/clients/orval/orval.config.mjs
import { defineConfig } from 'orval';

export default defineConfig({
  cesar: {
    input: process.env.ORVAL_SPEC ?? 'openapi.yaml',
    output: {
      target: process.env.ORVAL_OUTPUT ?? 'generated/cesar.ts',
      client: 'fetch',
      baseUrl: process.env.ORVAL_BASE_URL ?? 'http://127.0.0.1:8000',
    },
  },
});
