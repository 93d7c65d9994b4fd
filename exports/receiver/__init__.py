"""Reference receiver: the executable spec of the HTTP push protocol that we hand to the district."""
