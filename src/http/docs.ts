/**
 * @module http/docs
 * Swagger UI at `/docs`, served from the bundled `swagger-ui-dist` files only: the page loads nothing from any
 * other host, so it works on a machine without internet access.
 */
import type { RequestHandler } from 'express';
import type { Document } from 'openapi-backend';
import swaggerUi from 'swagger-ui-express';

/**
 * Two fixes to "Try it out" on forms, run once Swagger UI has started.
 *
 * Swagger UI fills every field of a form with a value made up from its schema (a random string matching
 * `pattern`, `https://example.com/` for a URL...): choosing only a file on `POST /jobs` sent a made-up `url`,
 * `model` and `language` with it. A form field now starts empty unless its schema has a `default` (form fields are
 * the only samples asked for without a media type: `contentType` false). A JSON request body starts as its
 * required properties only (request samples are the ones asked for with `includeWriteOnly`), not every optional
 * property with a made-up value.
 *
 * Swagger UI also sends the fields left empty, as empty strings, which the API refuses (an empty `url` beside a
 * file, an empty `model`): the request interceptor drops them, so a form sends what the user filled in.
 */
const TRY_IT_OUT_FORMS = `
window.addEventListener('load', function () {
  var system = window.ui.getSystem();
  var fn = system.fn;
  var sample = fn.getSampleSchema;
  fn.getSampleSchema = function (schema, contentType, config) {
    var plain = schema && typeof schema.toJS === 'function' ? schema.toJS() : schema;
    if (contentType === false && plain && plain.default === undefined && plain.type !== 'object' && plain.type !== 'array') {
      return '';
    }
    if (config && config.includeWriteOnly && plain && plain.type === 'object' && plain.properties) {
      var required = {};
      (plain.required || []).forEach(function (name) {
        if (plain.properties[name]) {
          required[name] = plain.properties[name];
        }
      });
      var args = Array.prototype.slice.call(arguments);
      args[0] = Object.assign({}, plain, { properties: required });
      return sample.apply(this, args);
    }
    return sample.apply(this, arguments);
  };
  var configs = system.getConfigs();
  var intercept = configs.requestInterceptor;
  configs.requestInterceptor = function (request) {
    if (typeof FormData !== 'undefined' && request.body instanceof FormData) {
      var empty = [];
      request.body.forEach(function (value, name) {
        if (value === '') {
          empty.push(name);
        }
      });
      empty.forEach(function (name) {
        request.body.delete(name);
      });
    }
    return intercept ? intercept(request) : request;
  };
});
`;

/** The middleware for `/docs`. Each app gets its own: `swaggerUi.serve` shares one page among all apps of a process. */
export function docsHandlers(spec: Document): RequestHandler[] {
  const options = {
    customSiteTitle: 'Cesar API',
    customJsStr: TRY_IT_OUT_FORMS,
    // The badge asks validator.swagger.io about the spec: a request to the internet, and the spec's business.
    swaggerOptions: { validatorUrl: null },
  };
  return [...swaggerUi.serveFiles(spec, options), swaggerUi.setup(spec, options)];
}
