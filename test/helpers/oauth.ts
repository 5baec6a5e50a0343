import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { serveOnLoopback, stopServer } from './loopback.ts';
import { recordSecret } from './db.ts';

export const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';
/** Why browser tests cannot run here, or false (`.ci/run` installs Debian's chromium). */
export const NO_BROWSER: string | false = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`;

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Headless Debian Chromium driven by playwright-core (flags: see the machine notes). */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A loopback redirect target: resolves each authorization response it receives. */
export async function callbackServer() {
  const waiting: ((url: URL) => void)[] = [];
  const { server, url } = await serveOnLoopback((req, res) => {
    const received = new URL(req.url ?? '/', 'http://127.0.0.1');
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>done</title><p>You can close this window.</p>');
    waiting.shift()?.(received);
  });
  return {
    redirectUrl: `${url}/callback`,
    /** The next authorization response; rejects after 20 s (the browser did not get there). */
    next: () =>
      new Promise<URL>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no authorization response reached the redirect URI within 20 s')), 20_000);
        waiting.push((url) => (clearTimeout(timer), resolve(url)));
      }),
    close: () => stopServer(server),
  };
}

/** The SDK's client-side OAuth state for one test client, kept in memory; every token is a recorded secret. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  private client: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = '';
  readonly redirect: string;
  readonly clientMetadataUrl?: string;
  private readonly metadata: OAuthClientMetadata;

  constructor(redirect: string, options: { clientMetadataUrl?: string; name?: string } = {}) {
    this.redirect = redirect;
    if (options.clientMetadataUrl) this.clientMetadataUrl = options.clientMetadataUrl;
    this.metadata = {
      client_name: options.name ?? 'Mandate OAuth test client',
      redirect_uris: [redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata() {
    return this.metadata;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    recordSecret(tokens.access_token);
    if (tokens.refresh_token) recordSecret(tokens.refresh_token);
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = recordSecret(verifier);
  }
  codeVerifier() {
    return this.verifier;
  }
}

type Page = Awaited<ReturnType<Awaited<ReturnType<typeof launchBrowser>>['newPage']>>;

/** Signs in on Mandate's page (when it asks) and allows on the consent page, as a person would. */
export async function signInAndAllow(page: Page, authorizationUrl: URL, credentials: { email: string; password: string } | null): Promise<void> {
  await page.goto(authorizationUrl.toString());
  if (credentials) {
    await page.getByLabel('Email').fill(credentials.email);
    await page.getByLabel('Password').fill(credentials.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  const allow = page.getByRole('button', { name: 'Allow' });
  // A page without the button says why (a failed sign-in, an expired request): show it.
  await allow.waitFor({ timeout: 10_000 }).catch(async () => {
    throw new Error(`no consent page; the browser shows ${page.url()}:\n${await page.locator('body').textContent()}`);
  });
  await allow.click();

}

/**
 * An https server on 127.0.0.1 with a self-signed certificate (openssl), for client ID metadata
 * documents: `mandate serve` trusts it through NODE_EXTRA_CA_CERTS.
 */
export async function httpsOnLoopback(handler: Parameters<typeof createHttpsServer>[1]): Promise<{ server: HttpsServer; url: string; caFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-cimd-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `https://127.0.0.1:${port}`, caFile: cert };
}
