"""Sous as a BigCommerce single-click app: what the connector does for the app's callbacks.

* :mod:`.signed`: verifying the ``signed_payload_jwt`` of the load, uninstall and remove_user
  callbacks (HS256 with the client secret; issuer, audience, times, store and user claims).
* :mod:`.oauth`: exchanging an install's code for the store's access token.
* :mod:`.models` and :mod:`.installs`: the installed stores and their users, kept in the
  database (the token itself is the store row's, encrypted like any other store's).

The HTTP routes that BigCommerce calls live in :mod:`api.bigcommerce_app`: they also open
console sessions, which belong to the API.
"""
