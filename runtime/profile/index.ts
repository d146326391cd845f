export * from './profile.ts'
export * from './merge.ts'
