// Starts GraphiQL against this broker. A same-origin file rather than an inline script, so the
// page's Content-Security-Policy can refuse all inline script.
/* global React, ReactDOM, GraphiQL */
(function () {
  'use strict';
  var graphql = GraphiQL.GraphQL;
  // graphql-js' standard introspection query is 15 fields deep only because its TypeRef fragment
  // unwraps 9 levels of list and non-null, and the broker refuses queries deeper than 12 (MAX_QUERY_DEPTH).
  // No type in our schema is wrapped more than 3 times ([X!]!), so 6 levels are plenty.
  var MAX_OF_TYPE = 6;

  function withShallowTypeRefs(query) {
    return graphql.print(graphql.visit(graphql.parse(query), {
      Field: function (node, _key, _parent, _path, ancestors) {
        if (node.name.value !== 'ofType') return undefined;
        var depth = ancestors.filter(function (a) { return a && a.kind === 'Field' && a.name.value === 'ofType'; }).length;
        return depth >= MAX_OF_TYPE ? null : undefined;
      },
    }));
  }

  // Subscriptions go over graphql-ws to the same host and port, encrypted (wss) when the page is (https).
  var socketScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var base = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: socketScheme + '//' + location.host + '/graphql',
  });
  function fetcher(params, options) {
    if (params.operationName === 'IntrospectionQuery') params = Object.assign({}, params, { query: withShallowTypeRefs(params.query) });
    return base(params, options);
  }
  ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, { fetcher: fetcher }));
})();
