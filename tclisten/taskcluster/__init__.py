"""The Taskcluster REST side: references, calls, clients, Hawk, credentials.

Nothing here imports kombu: a program that only calls Taskcluster never loads the AMQP stack.

- :mod:`.references`: the typed model and loaders of API and exchanges references, and the
  references bundled with tclisten (the data folder ``reference_data``);
- :mod:`.calls`: pure argument-to-URL binding of one API function;
- :mod:`.client`: the generated clients (``Queue``, ``Index``, ...) with the 2015 calling
  conventions;
- :mod:`.hawk`, :mod:`.credentials`: request signing, bewits, temporary credentials;
- :mod:`.utils`: the 2015 client's helpers (``slugId``, ``fromNow``, ``scopeMatch``, ...);
- :mod:`.docs`: the README's generated reference section.
"""
