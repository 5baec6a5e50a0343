import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';

// Checks requests against Atlassian's published OpenAPI documents (../shared/jira/): the path
// exists, the method exists on it, every query parameter is declared (and required ones are
// there), and a JSON body matches the operation's request schema.

export const JIRA_SPECS = fileURLToPath(new URL('../../../shared/jira/', import.meta.url));
export const CLOUD_SPEC = `${JIRA_SPECS}jira-cloud-platform-v3.openapi.json`;
export const DC_SPEC = `${JIRA_SPECS}jira-software-dc-10.3.openapi.json`;

export function specsMissing(): string | null {
  for (const file of [CLOUD_SPEC, DC_SPEC]) {
    if (!existsSync(file)) return `Atlassian's OpenAPI document ${file} is absent (../shared/jira/); the Jira request checks need it`;
  }
  return null;
}

type Json = Record<string, any>;

interface Template {
  path: string;
  pattern: RegExp;
  params: number;
}

export class OpenApiChecker {
  private readonly doc: Json;
  private readonly prefix: string;
  private readonly templates: Template[];
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();
  readonly name: string;
  /** The document's id inside Ajv (a URI: no spaces). */
  private readonly id: string;

  /** A document's file, or the document; prefix: what the server adds before its paths (Data Center: /rest). */
  constructor(source: string | Json, prefix: string, name: string) {
    this.doc = typeof source === 'string' ? (JSON.parse(readFileSync(source, 'utf8')) as Json) : source;
    this.prefix = prefix;
    this.name = name;
    this.id = `openapi-${(typeof source === 'string' ? source.replace(/^.*\//, '') : name).replace(/[^\w-]/g, '-')}`;
    this.templates = Object.keys(this.doc.paths)
      .map((path) => ({
        path,
        pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '([^/]+)')}$`),
        params: (path.match(/\{/g) ?? []).length,
      }))
      // A literal segment wins over a parameter: /issue/createmeta/... before /issue/{key}/...
      .sort((a, b) => a.params - b.params);
    this.ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true, validateSchema: false });
    this.ajv.addSchema(this.doc, this.id);
  }

  /** Whether this document describes the path (after the prefix). */
  covers(pathname: string): boolean {
    return pathname.startsWith(this.prefix) && this.match(pathname.slice(this.prefix.length)) !== undefined;
  }

  private match(path: string): Template | undefined {
    return this.templates.find((t) => t.pattern.test(path));
  }

  private resolve(node: Json): Json {
    let current = node;
    while (current && current.$ref) {
      const parts = String(current.$ref).replace(/^#\//, '').split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
      current = parts.reduce((acc: Json, part) => acc?.[part], this.doc);
    }
    return current;
  }

  /** The mismatches of one request (empty when it is one the API accepts); a multipart body is checked by its parts' names. */
  check(method: string, url: URL, body: unknown, multipartParts?: string[]): string[] {
    const where = `${method} ${url.pathname}`;
    if (!url.pathname.startsWith(this.prefix)) return [`${where}: outside ${this.prefix}`];
    const template = this.match(url.pathname.slice(this.prefix.length));
    if (!template) return [`${where}: no such path in ${this.name}`];
    const operation = this.doc.paths[template.path][method.toLowerCase()] as Json | undefined;
    if (!operation) return [`${where}: ${this.name} has no ${method} on ${template.path}`];
    const problems: string[] = [];
    const declared = [...(this.doc.paths[template.path].parameters ?? []), ...(operation.parameters ?? [])].map((p: Json) => this.resolve(p));
    const query = declared.filter((p) => p.in === 'query');
    for (const key of new Set(url.searchParams.keys())) {
      const param = query.find((p) => p.name === key);
      if (!param) {
        problems.push(`${where}: query parameter "${key}" is not declared for ${method} ${template.path}`);
        continue;
      }
      const schema = this.resolve(param.schema ?? {});
      for (const value of url.searchParams.getAll(key)) {
        if ((schema.type === 'integer' || schema.type === 'number') && !/^-?\d+(\.\d+)?$/.test(value)) problems.push(`${where}: query "${key}" must be a number, got "${value}"`);
        if (schema.type === 'boolean' && !/^(true|false)$/.test(value)) problems.push(`${where}: query "${key}" must be true or false, got "${value}"`);
        if (Array.isArray(schema.enum) && !schema.enum.map(String).includes(value)) problems.push(`${where}: query "${key}" must be one of ${schema.enum.join(', ')}`);
      }
    }
    for (const param of query.filter((p) => p.required)) {
      if (!url.searchParams.has(param.name)) problems.push(`${where}: required query parameter "${param.name}" is missing`);
    }
    const requestBody = operation.requestBody ? this.resolve(operation.requestBody) : undefined;
    if (multipartParts) {
      const form = requestBody?.content?.['multipart/form-data'];
      if (!form) return [...problems, `${where}: sends multipart/form-data, which ${method} ${template.path} does not take`];
      const schema = this.resolve(form.schema ?? {});
      const declaredParts = Object.keys(schema.properties ?? {});
      // Atlassian documents the upload's part as a free-form array; a named part list is checked.
      for (const part of multipartParts) if (declaredParts.length && schema.type === 'object' && !declaredParts.includes(part)) problems.push(`${where}: multipart part "${part}" is not declared`);
      return problems;
    }
    if (body !== undefined && !requestBody) problems.push(`${where}: sends a body, but ${method} ${template.path} takes none`);
    if (body === undefined && requestBody?.required) problems.push(`${where}: the request body is required`);
    const content = requestBody?.content?.['application/json'] ?? requestBody?.content?.['*/*'];
    if (body !== undefined && content?.schema) {
      const pointer = `${this.id}#/paths/${template.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/requestBody/content/${requestBody!.content['application/json'] ? 'application~1json' : '*~1*'}/schema`;
      let validate = this.validators.get(pointer);
      if (!validate) {
        validate = this.ajv.getSchema(pointer);
        if (!validate) {
          // requestBody itself may be a $ref into components.
          validate = this.ajv.compile(content.schema.$ref ? { $ref: `${this.id}${content.schema.$ref}` } : content.schema);
        }
        this.validators.set(pointer, validate);
      }
      if (!validate(body)) {
        for (const error of validate.errors ?? []) problems.push(`${where}: body${error.instancePath} ${error.message}${error.params ? ` ${JSON.stringify(error.params)}` : ''}`);
      }
    }
    return problems;
  }
}
