import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { PERMISSIONS, type Permission } from '../access/permissions.ts';
import type { PendingInteraction } from '../oauth/server.ts';
import { escapeHtml } from '../html.ts';

// The sign-in and consent pages: plain HTML, no script, no third-party asset, one stylesheet whose
// hash is the only style the CSP allows.

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password]{width:100%;padding:.5rem;font:inherit}
button{font:inherit;padding:.5rem 1.2rem;margin:1rem .5rem 0 0}.muted{color:#555}.error{color:#a00;font-weight:600}
ul{padding-left:1.2rem}li label{display:inline;margin:0}code{background:#f2f2f2;padding:0 .2rem}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** Where a form's answer may lead: this server, and the client's callback (a redirect counts). */
function formTargets(redirectUri: string | undefined): string {
  const url = redirectUri ? URL.parse(redirectUri) : null;
  if (!url) return "'self'";
  if (url.protocol === 'http:' || url.protocol === 'https:') return `'self' ${url.origin}`;
  return `'self' ${url.protocol}`;
}

export function pageHeaders(redirectUri?: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action ${formTargets(redirectUri)}; frame-ancestors 'none'; base-uri 'none'`,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export function sendPage(res: ServerResponse, status: number, html: string, redirectUri?: string, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...pageHeaders(redirectUri), ...extra, 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

export function signInPage(pending: PendingInteraction, csrf: string, error?: string): string {
  return page(
    'Sign in to Mandate',
    `<h1>Sign in to Mandate</h1>
<p><strong>${escapeHtml(pending.clientName)}</strong> <span class="muted">(${escapeHtml(pending.redirectHost)})</span> asks to use Mandate as you.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/oauth/interaction/${escapeHtml(pending.uid)}/login">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" name="action" value="login">Sign in</button>
</form>
<form method="post" action="/oauth/interaction/${escapeHtml(pending.uid)}/deny"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit">Cancel</button></form>`,
  );
}

export function consentPage(pending: PendingInteraction, user: { email: string }, offered: Permission[], csrf: string): string {
  const items = offered.length
    ? `<ul>${offered.map((p) => `<li><input type="checkbox" id="p-${escapeHtml(p)}" name="permission" value="${escapeHtml(p)}" checked> <label for="p-${escapeHtml(p)}"><code>${escapeHtml(p)}</code>: ${escapeHtml(PERMISSIONS[p])}</label></li>`).join('')}</ul>`
    : '<p class="muted">You hold no permission this application could use.</p>';
  return page(
    'Allow access to Mandate',
    `<h1>Allow ${escapeHtml(pending.clientName)} to act as you?</h1>
<p>Signed in as <strong>${escapeHtml(user.email)}</strong>.</p>
<p><strong>${escapeHtml(pending.clientName)}</strong> will receive its answer at <strong>${escapeHtml(pending.redirectHost)}</strong> and can use <code>${escapeHtml(pending.resource)}</code> with these of your permissions, no more (untick any to narrow them):</p>
<form method="post" action="/oauth/interaction/${escapeHtml(pending.uid)}/consent">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
${items}
<button type="submit" name="action" value="allow">Allow</button>
</form>
<form method="post" action="/oauth/interaction/${escapeHtml(pending.uid)}/deny"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit">Deny</button></form>
<p class="muted">You can see and revoke connected applications at any time (<code>list_my_oauth_grants</code>, <code>revoke_my_oauth_grant</code>).</p>`,
  );
}

export function problemPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p>Go back to the application and connect again.</p>`);
}
