// Express hello server for bench/http-hello: GET /hello -> {"message":"hello"}.
// Stock settings (ETag and X-Powered-By on, as a fresh Express app has them).
// Usage: node express.js PORT   (listens on 127.0.0.1 only)
'use strict';
const express = require('express');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node express.js PORT');
  process.exit(2);
}

const app = express();
app.get('/hello', (req, res) => {
  res.json({ message: 'hello' });
});
app.listen(port, '127.0.0.1', () => {
  console.error(`express listening on 127.0.0.1:${port}`);
});
