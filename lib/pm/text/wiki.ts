import type { PhrasingContent, RootContent } from 'mdast';
import { parseMarkdown } from './markdown.ts';

// Markdown <-> a lightweight markup with a line-based grammar: Jira Data Center's wiki markup and
// Redmine's Textile differ in a handful of tokens (below), so one converter serves both.

export interface Markup {
  name: 'wiki' | 'textile';
  heading(level: number): string;
  strong: string;
  em: string;
  strike: string;
  code(text: string): string;
  link(text: string, url: string): string;
  codeBlock(lang: string | null, text: string): string;
  quote(text: string): string;
  bullet(depth: number): string;
  ordered(depth: number): string;
  tableHeader(cells: string[]): string;
}

export const WIKI: Markup = {
  name: 'wiki',
  heading: (level) => `h${level}. `,
  strong: '*',
  em: '_',
  strike: '-',
  code: (text) => `{{${text}}}`,
  link: (text, url) => (text && text !== url ? `[${text}|${url}]` : `[${url}]`),
  codeBlock: (lang, text) => `{code${lang ? `:${lang}` : ''}}\n${text}\n{code}`,
  quote: (text) => `{quote}\n${text}\n{quote}`,
  bullet: (depth) => '*'.repeat(depth),
  ordered: (depth) => '#'.repeat(depth),
  tableHeader: (cells) => `||${cells.join('||')}||`,
};

export const TEXTILE: Markup = {
  name: 'textile',
  heading: (level) => `h${level}. `,
  strong: '*',
  em: '_',
  strike: '-',
  code: (text) => `@${text}@`,
  link: (text, url) => (text && text !== url ? `"${text}":${url}` : url),
  codeBlock: (lang, text) => (lang ? `<pre><code class="${lang}">\n${text}\n</code></pre>` : `<pre>\n${text}\n</pre>`),
  quote: (text) => text.split('\n').map((line) => `> ${line}`).join('\n'),
  bullet: (depth) => '*'.repeat(depth),
  ordered: (depth) => '#'.repeat(depth),
  tableHeader: (cells) => `|_. ${cells.join('|_. ')}|`,
};

function inline(nodes: PhrasingContent[], m: Markup): string {
  return nodes
    .map((node) => {
      switch (node.type) {
        case 'text':
          return node.value;
        case 'strong':
          return `${m.strong}${inline(node.children, m)}${m.strong}`;
        case 'emphasis':
          return `${m.em}${inline(node.children, m)}${m.em}`;
        case 'delete':
          return `${m.strike}${inline(node.children, m)}${m.strike}`;
        case 'inlineCode':
          return m.code(node.value);
        case 'link':
          return m.link(inline(node.children, m), node.url);
        case 'break':
          return m.name === 'wiki' ? '\\\\\n' : '\n';
        case 'image':
          return m.name === 'wiki' ? `!${node.url}!` : `!${node.url}!`;
        case 'html':
          return node.value;
        default:
          return '';
      }
    })
    .join('');
}

function block(node: RootContent, m: Markup, depth = 0): string {
  switch (node.type) {
    case 'paragraph':
      return inline(node.children, m);
    case 'heading':
      return m.heading(node.depth) + inline(node.children, m);
    case 'code':
      return m.codeBlock(node.lang ?? null, node.value);
    case 'blockquote':
      return m.quote(node.children.map((child) => block(child, m)).join('\n\n'));
    case 'thematicBreak':
      return '----';
    case 'list':
      return node.children
        .map((item) => {
          const marker = node.ordered ? m.ordered(depth + 1) : m.bullet(depth + 1);
          const task = typeof item.checked === 'boolean' ? (item.checked ? '(/) ' : '(x) ') : '';
          const [first, ...rest] = item.children;
          const head = first && first.type === 'paragraph' ? inline(first.children, m) : first ? block(first, m, depth + 1) : '';
          const tail = rest.map((child) => block(child, m, depth + 1));
          return [`${marker} ${m.name === 'wiki' ? task : ''}${head}`, ...tail].join('\n');
        })
        .join('\n');
    case 'table':
      return node.children
        .map((row, index) => {
          const cells = row.children.map((cell) => inline(cell.children, m));
          return index === 0 ? m.tableHeader(cells) : `|${cells.join('|')}|`;
        })
        .join('\n');
    case 'html':
      return node.value;
    default:
      return '';
  }
}

/** Markdown rendered in wiki markup or Textile. */
export function markdownToMarkup(markdown: string, m: Markup): string {
  return parseMarkdown(markdown).children.map((child) => block(child, m)).join('\n\n');
}

function inlineToMarkdown(text: string, m: Markup): string {
  let out = text;
  if (m.name === 'wiki') {
    out = out.replace(/\{\{([^}]+)\}\}/g, '`$1`');
    out = out.replace(/\[([^|\]]+)\|([^\]]+)\]/g, '[$1]($2)');
    out = out.replace(/\[((?:https?|mailto):[^\]\s]+)\]/g, '<$1>');
    out = out.replace(/\\\\$/gm, '\\');
  } else {
    out = out.replace(/@([^@\s][^@]*?)@/g, '`$1`');
    out = out.replace(/"([^"]+)":(\S+[^\s.,;:!?)])/g, '[$1]($2)');
  }
  out = out.replace(/(^|[\s(])\*(\S(?:[^*]*\S)?)\*(?=$|[\s).,;:!?])/g, '$1**$2**');
  out = out.replace(/(^|[\s(])_(\S(?:[^_]*\S)?)_(?=$|[\s).,;:!?])/g, '$1*$2*');
  out = out.replace(/(^|[\s(])-(\S(?:[^-]*\S)?)-(?=$|[\s).,;:!?])/g, '$1~~$2~~');
  return out;
}

/** Wiki markup or Textile back to Markdown (the common constructs; anything else is kept as text). */
export function markupToMarkdown(text: string, m: Markup): string {
  if (!text) return '';
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const codeOpen = m.name === 'wiki' ? /^\{(code|noformat)(?::([\w+#-]+))?[^}]*\}\s*$/.exec(line) : /^<pre>(?:<code(?: class="([\w+#-]+)")?>)?\s*$/.exec(line);
    if (codeOpen) {
      const close = m.name === 'wiki' ? new RegExp(`^\\{${codeOpen[1]}\\}\\s*$`) : /^(?:<\/code>)?<\/pre>\s*$/;
      const lang = m.name === 'wiki' ? (codeOpen[2] ?? '') : (codeOpen[1] ?? '');
      const body: string[] = [];
      for (i++; i < lines.length && !close.test(lines[i]!); i++) body.push(lines[i]!);
      out.push('```' + lang, ...body, '```');
      continue;
    }
    if (m.name === 'wiki' && /^\{quote\}\s*$/.test(line)) {
      for (i++; i < lines.length && !/^\{quote\}\s*$/.test(lines[i]!); i++) out.push(`> ${inlineToMarkdown(lines[i]!, m)}`);
      continue;
    }
    const heading = /^h([1-6])\.\s+(.*)$/.exec(line);
    if (heading) {
      out.push(`${'#'.repeat(Number(heading[1]))} ${inlineToMarkdown(heading[2]!, m)}`);
      continue;
    }
    const item = /^([*#]+)\s+(.*)$/.exec(line);
    if (item) {
      const depth = item[1]!.length - 1;
      const ordered = item[1]!.endsWith('#');
      let content = item[2]!;
      let task = '';
      if (m.name === 'wiki' && content.startsWith('(/) ')) [task, content] = ['[x] ', content.slice(4)];
      else if (m.name === 'wiki' && content.startsWith('(x) ')) [task, content] = ['[ ] ', content.slice(4)];
      out.push(`${'   '.repeat(depth)}${ordered ? '1.' : '-'} ${task}${inlineToMarkdown(content, m)}`);
      continue;
    }
    if (/^-{4,}\s*$/.test(line)) {
      out.push('---');
      continue;
    }
    const header = m.name === 'wiki' ? /^\|\|(.*)\|\|\s*$/.exec(line) : /^\|_\.\s*(.*)\|\s*$/.exec(line);
    if (header) {
      const cells = header[1]!.split(m.name === 'wiki' ? '||' : /\|_\.\s*/).map((c) => inlineToMarkdown(c.trim(), m));
      out.push(`| ${cells.join(' | ')} |`, `| ${cells.map(() => '---').join(' | ')} |`);
      continue;
    }
    const row = /^\|(.*)\|\s*$/.exec(line);
    if (row) {
      out.push(`| ${row[1]!.split('|').map((c) => inlineToMarkdown(c.trim(), m)).join(' | ')} |`);
      continue;
    }
    if (m.name === 'textile' && line.startsWith('> ')) {
      out.push(`> ${inlineToMarkdown(line.slice(2), m)}`);
      continue;
    }
    out.push(inlineToMarkdown(line, m));
  }
  return out.join('\n');
}

// Wiki markup markupToMarkdown keeps only as text: a Markdown rewrite would destroy it.
const WIKI_LOSSES: [RegExp, string][] = [
  [/\{(panel|info|note|tip|warning)[:}]/i, 'panels'],
  [/\{color[:}]/i, 'text colour'],
  [/\{expand[:}]/i, 'expands'],
  [/\[~[^\]]+\]/, 'mentions'],
  [/![^!\s][^!]*!/, 'attachments shown inline'],
  [/\+\S[^+]*\+/, 'underline'],
  [/\|\|/, 'table headers'],
];

/** What of a Jira wiki text Markdown cannot carry (empty: a Markdown rewrite keeps everything). */
export function wikiLosses(text: string): string[] {
  return WIKI_LOSSES.filter(([pattern]) => pattern.test(text)).map(([, what]) => what).sort();
}
