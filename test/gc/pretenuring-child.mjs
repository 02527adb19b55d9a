// Run by pretenuring.test.ts in a Node of its own, with
//   --allow-natives-syntax --expose-gc --min-semi-space-size=1 --max-semi-space-size=1
// (a young generation always at its largest, so that V8 may decide to pretenure at any collection).
// Puts DECISIONS decisions in flight at once — a rate limiter and an authenticator that answer
// only when told — and collects the young generation while all of them wait: every object a
// decision made and keeps is alive, which is what makes V8 decide that an object literal makes
// long-lived objects and make the next ones in the old generation. Then starts as many again and
// reports, of what the second round's decisions keep while they wait (the limiter's request, the
// providers' message) and of the verdicts they return, how many were made in the old generation.
// Argument: the package's dist directory.
const dist = process.argv[2];
const { createDecider, createPolicy, createStaticResolver } = await import(`${dist}/index.js`);

const DECISIONS = 400;
const ROUNDS = 30;
const policy = createPolicy({ acceptedDomains: ['contoso.com'] });
const zone = { 'fabrikam.example': { MX: [{ exchange: 'mx.fabrikam.example', priority: 10 }] } };
let answers = [];
const requests = [];
const messages = [];
const later = (value) => new Promise((resolve) => answers.push(() => resolve(value)));
const decide = createDecider({
  policy,
  providers: {
    dns: createStaticResolver(zone),
    rateLimiter: {
      // Whether each was made young, looked at as it is handed over (before a collection could move it).
      consume: (request) => {
        requests.push(%InYoungGeneration(request));
        return later({ restriction: null, breaches: [], counted: true });
      },
      restriction: () => null,
    },
    authenticator: {
      authenticate: (message) => {
        messages.push(%InYoungGeneration(message));
        return later({ spf: { result: 'pass', domain: 'fabrikam.example' }, dkim: [] });
      },
    },
  },
});
const now = new Date(Date.UTC(2026, 0, 5));

async function round(n) {
  requests.length = 0;
  messages.length = 0;
  const decisions = [];
  for (let i = 0; i < DECISIONS; i++) {
    decisions.push(decide({ mailFrom: `user${i}@fabrikam.example`, rcptTo: [`r${n}.${i}@northwind.example`], headers: `Message-ID: <${n}.${i}@fabrikam.example>\r\n\r\n` }, { now }));
  }
    const young = { requests: requests.filter(Boolean).length, messages: messages.filter(Boolean).length };
  // Every decision waits: whatever they made is alive at this collection.
  gc({ type: 'minor' });
  const settle = answers;
  answers = [];
  for (const answer of settle) answer();
  const done = await Promise.all(decisions);
  young.verdicts = done.filter((d) => %InYoungGeneration(d.verdicts.limits) && %InYoungGeneration(d.verdicts.authentication)).length;
  young.decisions = done.length;
  return young;
}

// Enough rounds for V8 to optimize the decision's code (optimized code allocates where the
// allocation site says); the last round is the one reported.
let last;
for (let n = 1; n <= ROUNDS; n++) last = await round(n);
console.log(JSON.stringify(last));
