import type { PmProvider } from '../db/entities/index.ts';
import { UpstreamHttp } from './http.ts';
import { lazyTracker } from './lazy-tracker.ts';
import type { Tracker } from './provider.ts';
import type { PmSettings } from './settings.ts';
import { AtlassianOAuth } from './oauth/atlassian.ts';
import { OAuthTokens } from './oauth/tokens.ts';

/** What a connection's sealed secret holds, by provider. */
export interface Credentials {
  email?: string;
  apiToken?: string;
  token?: string;
  apiKey?: string;
  /** OAuth connections (Jira Cloud 3LO). */
  accessToken?: string;
  refreshToken?: string;
}

export const PROVIDER_LABEL: Record<PmProvider, string> = {
  jira_cloud: 'Jira Cloud',
  jira_dc: 'Jira Data Center',
  redmine: 'Redmine',
  openproject: 'OpenProject',
};

const clients = () => import('./trackers.ts');

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export interface PmServiceOptions {
  sleep?: (ms: number) => Promise<unknown>;
  /** Lock a connection's row while refreshing its OAuth token (PostgreSQL: several processes). */
  lockRows?: boolean;
}

/** The PM side of a process: settings, the one upstream HTTP client, and tracker construction. */
export class PmService {
  readonly settings: PmSettings;
  readonly http: UpstreamHttp;
  /** Jira Cloud OAuth (3LO), when the deployment has an app registered with Atlassian. */
  readonly jiraOAuth: AtlassianOAuth | null;
  readonly oauthTokens: OAuthTokens | null;

  constructor(settings: PmSettings, options: PmServiceOptions = {}) {
    this.settings = settings;
    this.http = new UpstreamHttp(settings.http, options.sleep ? { sleep: options.sleep } : {});
    this.jiraOAuth = settings.jiraOAuth ? new AtlassianOAuth(this.http, settings.jiraOAuth) : null;
    this.oauthTokens = this.jiraOAuth ? new OAuthTokens(this.jiraOAuth, { lockRows: options.lockRows ?? false }) : null;
  }

  /** The browser URL that starts an OAuth connection to the provider (null: not offered here). */
  connectUrl(provider: PmProvider): string | null {
    return provider === 'jira_cloud' && this.jiraOAuth ? `${this.settings.publicUrl}/api/v1/user/credentials/${provider}/connect` : null;
  }

  /** Jira Cloud through Atlassian's API gateway with an OAuth access token (fetched per request). */
  jiraOAuthTracker(siteUrl: string, cloudId: string, accessToken: () => Promise<string>): Tracker {
    if (!this.jiraOAuth) throw new Error('unreachable: OAuth connections are refused where OAuth is not configured');
    const apiRoot = this.jiraOAuth.apiRoot(cloudId);
    return lazyTracker('jira_cloud', async () => {
      const { JiraApi, JiraTracker } = await clients();
      return new JiraTracker(new JiraApi(this.http, { flavor: 'cloud', siteUrl, apiRoot, authorization: async () => `Bearer ${await accessToken()}` }));
    });
  }

  tracker(provider: PmProvider, baseUrl: string, credentials: Credentials): Tracker {
    return lazyTracker(provider, async () => {
      const { JiraApi, JiraTracker, RedmineTracker, OpenProjectTracker } = await clients();
      switch (provider) {
        case 'jira_cloud': {
          const authorization = basic(credentials.email ?? '', credentials.apiToken ?? '');
          return new JiraTracker(new JiraApi(this.http, { flavor: 'cloud', siteUrl: baseUrl, apiRoot: baseUrl, authorization: async () => authorization }));
        }
        case 'jira_dc': {
          const authorization = `Bearer ${credentials.token ?? ''}`;
          return new JiraTracker(new JiraApi(this.http, { flavor: 'dc', siteUrl: baseUrl, apiRoot: baseUrl, authorization: async () => authorization }));
        }
        case 'redmine':
          return new RedmineTracker(this.http, baseUrl, credentials.apiKey ?? '');
        case 'openproject':
          return new OpenProjectTracker(this.http, baseUrl, credentials.apiKey ?? '');
      }
    });
  }

  close(): void {
    this.http.close();
  }
}
