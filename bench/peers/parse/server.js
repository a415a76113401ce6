// Parse Server 9 on PostgreSQL: the peer of Basalt's data-API benchmark (bench/run.sh starts it).
// Environment: PARSE_DATABASE_URI (postgres://...), PORT (loopback port). Keys are fixed test
// strings (loopback only, throwaway database). Prints "parse-server listening on <port>" when ready.
'use strict';
// No log files: Parse reads this at require time (its default ./logs lands in the caller's cwd).
process.env.PARSE_SERVER_LOGS_FOLDER = 'null';
const express = require('express');
const { ParseServer } = require('parse-server');

const port = Number(process.env.PORT || 1337);
const databaseURI = process.env.PARSE_DATABASE_URI;
if (!databaseURI) {
  console.error('PARSE_DATABASE_URI is required');
  process.exit(2);
}

async function main() {
  const server = new ParseServer({
    databaseURI,
    appId: 'basalt-bench-app',
    masterKey: 'basalt-bench-master-key',
    restAPIKey: 'basalt-bench-rest-key',
    serverURL: `http://127.0.0.1:${port}/parse`,
    mountPath: '/parse',
    logLevel: 'error',
    logsFolder: null,
    silent: true,
    allowClientClassCreation: true,
    enableInsecureAuthAdapters: false,
  });
  await server.start();
  const app = express();
  app.get('/healthz', (req, res) => res.json({ status: 'ok' }));
  app.use('/parse', server.app);
  const http = app.listen(port, '127.0.0.1', () => {
    console.log(`parse-server listening on ${port}`);
  });
  const stop = () => {
    http.close();
    Promise.resolve(server.handleShutdown && server.handleShutdown()).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error('parse-server failed to start:', err);
  process.exit(1);
});
