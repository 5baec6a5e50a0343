import type { ServerResponse } from 'node:http';

// The page a browser lands on after an OAuth connect. It shows one of a few fixed texts chosen by
// `outcome`; nothing from the URL is echoed into the page.

const OUTCOMES: Record<string, { title: string; text: string }> = {
  connected: { title: 'Connected', text: 'Your tracker connection is stored. You can close this tab; your PM tools use it from now on (list_pm_connections shows it).' },
  denied: { title: 'Not connected', text: 'Access was not approved, so nothing was stored. Start again from the connect link if you change your mind.' },
  failed: { title: 'Not connected', text: 'Atlassian could not complete the authorization, so nothing was stored. Start again from the connect link; if it keeps failing, ask the administrators of this deployment.' },
};
const UNKNOWN = { title: 'Connection', text: 'Nothing to show here. list_pm_connections tells the state of your connections.' };

export function sendOAuthResult(res: ServerResponse, url: URL): void {
  const { title, text } = OUTCOMES[url.searchParams.get('outcome') ?? ''] ?? UNKNOWN;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mandate: ${title}</title></head>` +
    `<body style="font-family:sans-serif;max-width:40em;margin:4em auto"><h1>${title}</h1><p>${text}</p></body></html>`;
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
  });
  res.end(html);
}
