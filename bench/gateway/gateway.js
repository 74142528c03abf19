// The Node.js gateway bench/gateway compares against, built the way the
// Node.js microservices guides build one: Express + http-proxy-middleware with
// a keep-alive agent to the upstream. Usage: node gateway.js PORT UPSTREAM_URL
'use strict';
const http = require('http');
const express = require('express');
const { createProxyMiddleware } = require('http-proxy-middleware');

const [port, upstream] = process.argv.slice(2);
const app = express();
app.disable('x-powered-by');
app.use('/', createProxyMiddleware({
  target: upstream,
  agent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  logLevel: 'silent',
}));
app.listen(Number(port), '127.0.0.1');
