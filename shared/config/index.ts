export {
  ConfigLoader,
  type ConfigLoaderOptions,
  type ConfigCache,
  clearConfigCache,
  createConfigCache,
  type LoadedParameter,
  loadParameters,
  SECRETS_MANAGER_REFERENCE,
} from './loader';
export { booleanString, integerString, stringList } from './schema';
