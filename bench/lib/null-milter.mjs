// A milter that decides nothing: it negotiates like the pool milter (same macros, no body) and
// lets every message through unchanged. The bench runs it beside the pool milter to separate
// what the milter protocol costs in Postfix from what the decision costs.
// Usage: node bench/lib/null-milter.mjs inet:127.0.0.1:PORT | unix:PATH   (needs a build: dist/)
const { startMilterServer, parseListenAddress } = await import('../../dist/postfix/index.js');
const server = await startMilterServer(
  parseListenAddress(process.argv[2]),
  {
    handler: {
      bodyLimit: 0,
      macros: new Map([
        [2, ['i', 'auth_authen', 'auth_type']],
        [5, ['i']],
      ]),
      endOfMessage: () => ({ action: 'continue', changes: [] }),
    },
  },
);
console.log(`null milter: listening on ${server.address}`);
process.once('SIGTERM', () => server.close().then(() => process.exit(0)));
