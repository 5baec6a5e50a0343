import { defineEntity, p } from '@mikro-orm/core';

// rate-limiter-flexible's Postgres store (failed logins), owned here so migrations create it and
// every instance shares it. Keys are "<limiter>:<ip|ip+email|email>"; expire is epoch milliseconds.
const LoginLimitSchema = defineEntity({
  name: 'LoginLimit',
  tableName: 'login_limit',
  properties: {
    key: p.string().length(255).primary(),
    points: p.integer().default(0),
    expire: p.bigint('number').nullable(),
  },
});

export class LoginLimit extends LoginLimitSchema.class {}
LoginLimitSchema.setClass(LoginLimit);
export { LoginLimitSchema };
