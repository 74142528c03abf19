// Fastify hello server for bench/http-hello: GET /hello -> {"message":"hello"}.
// Logger off and a response schema (serialised by fast-json-stringify), the
// way Fastify's own benchmarks configure it, so Fastify runs at its best.
// Usage: node fastify.js PORT   (listens on 127.0.0.1 only)
'use strict';
const fastify = require('fastify')({ logger: false });

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node fastify.js PORT');
  process.exit(2);
}

const schema = {
  response: {
    200: {
      type: 'object',
      properties: { message: { type: 'string' } },
    },
  },
};

fastify.get('/hello', { schema }, async () => ({ message: 'hello' }));

fastify.listen({ port, host: '127.0.0.1' }, (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.error(`fastify listening on 127.0.0.1:${port}`);
});
