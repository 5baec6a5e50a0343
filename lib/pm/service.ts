import type { PmProvider } from '../db/entities/index.ts';
import { UpstreamHttp } from './http.ts';
import { JiraApi } from './jira/api.ts';
import { JiraTracker } from './jira/tracker.ts';
import { RedmineTracker } from './redmine/tracker.ts';
import type { Tracker } from './provider.ts';
import type { PmSettings } from './settings.ts';

/** What a connection's sealed secret holds, by provider. */
export interface Credentials {
  email?: string;
  apiToken?: string;
  token?: string;
  apiKey?: string;
}

export const PROVIDER_LABEL: Record<PmProvider, string> = {
  jira_cloud: 'Jira Cloud',
  jira_dc: 'Jira Data Center',
  redmine: 'Redmine',
  openproject: 'OpenProject',
};

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The PM side of a process: settings, the one upstream HTTP client, and tracker construction. */
export class PmService {
  readonly settings: PmSettings;
  readonly http: UpstreamHttp;

  constructor(settings: PmSettings, options: { sleep?: (ms: number) => Promise<unknown> } = {}) {
    this.settings = settings;
    this.http = new UpstreamHttp(settings.http, options);
  }

  tracker(provider: PmProvider, baseUrl: string, credentials: Credentials): Tracker {
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
        throw new Error('unreachable: OpenProject connections are refused when added');
    }
  }

  close(): void {
    this.http.close();
  }
}
