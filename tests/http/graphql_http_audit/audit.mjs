// Runs graphql-http's server audits (the GraphQL-over-HTTP spec's) against GRAPHQL_URL, sending
// GRAPHQL_AUTHORIZATION on every request; prints one JSON line per audit: id, name, status, reason.
import { auditServer } from 'graphql-http';

const url = process.env.GRAPHQL_URL;
const authorization = process.env.GRAPHQL_AUTHORIZATION;
if (!url || !authorization) {
  console.error('set GRAPHQL_URL and GRAPHQL_AUTHORIZATION');
  process.exit(2);
}

function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', authorization);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
for (const { id, name, status, reason } of results) {
  console.log(JSON.stringify({ id, name, status, reason: reason ?? null }));
}
