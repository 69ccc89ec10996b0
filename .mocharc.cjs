module.exports = {
  'node-option': ['import=tsx', 'no-experimental-require-module'],
  reporter: 'spec/helpers/reporter.cjs',
  timeout: 20000,
  exit: true,
};
