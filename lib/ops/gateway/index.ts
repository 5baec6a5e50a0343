export * from './tools.ts';
export * from './review.ts';
