module.exports = {
  spec: ['spec/**/*.spec.ts'],
  'node-option': ['import=tsx'],
  reporter: 'spec/helpers/reporter.cjs',
  timeout: 20000,
  exit: true,
};
