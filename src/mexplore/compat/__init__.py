"""Come from EMEWS unchanged: EQ/Py (:mod:`.eqpy`), EQ/SQL (:mod:`.eqsql`) and algorithms
in any language over a JSON-lines protocol (:mod:`.protocol`, clients in :mod:`.client`
and ``mexplore.R``). Each is a face over the IoC queue (:mod:`mexplore.queue.futures`)."""
