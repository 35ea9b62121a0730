# Installing Nudge as a service (included by the top CMakeLists.txt; the unit templates are in
# config/systemd, the .deb's maintainer scripts in cmake/debian): `cmake --install build --prefix /usr` (DESTDIR honoured) lays
# out <prefix>/bin/nudge-api and nudge-worker, the systemd units nudge-api.service and
# nudge-worker@.service in <prefix>/lib/systemd/system, and nudge.toml in <sysconfdir>/nudge,
# where <sysconfdir> is /etc for the prefix /usr and <prefix>/etc otherwise (the GNU rule).
# The units name the paths of that prefix, so they are written at install time, when the prefix
# is known, not here. scripts/package.sh turns the same layout into a .deb (CPack, below).

install(TARGETS nudge-api nudge-worker RUNTIME DESTINATION bin)
install(CODE "
  set(NUDGE_UNIT_TEMPLATES \"${CMAKE_SOURCE_DIR}/config/systemd\")
  set(NUDGE_CONFIG_FILE \"${CMAKE_SOURCE_DIR}/config/nudge.toml\")
  set(NUDGE_UNIT_DIR \"${CMAKE_BINARY_DIR}/units\")
  include(\"${CMAKE_SOURCE_DIR}/cmake/install_service.cmake\")
")

# The .deb: package `nudge`, its library dependencies found by dpkg-shlibdeps, nudge.toml a
# conffile (an upgrade keeps the admin's edits), the `nudge` user made by postinst.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME nudge)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "reminder and scheduling engine built around PostgreSQL")
set(CPACK_PACKAGE_DESCRIPTION
    "Remind X about Y, repeatedly, until Z is done. nudge-api takes reminders over REST,
nudge-worker delivers them (log, webhook, email); every rule of a reminder's life is
PL/pgSQL in the database, the only coordinator between any number of workers.
Systemd units: nudge-api.service and nudge-worker@.service.")
set(NUDGE_PACKAGE_MAINTAINER "Nudge maintainers <nudge@localhost>"
    CACHE STRING "Maintainer field of the .deb")
set(CPACK_PACKAGE_CONTACT ${NUDGE_PACKAGE_MAINTAINER})
# DESTDIR staging: the install script sees the real prefix (/usr) and can put nudge.toml in
# /etc, outside it.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Appended to what dpkg-shlibdeps finds: postinst creates the user with adduser.
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS postgresql)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/cmake/debian/conffiles ${CMAKE_SOURCE_DIR}/cmake/debian/postinst
    ${CMAKE_SOURCE_DIR}/cmake/debian/prerm ${CMAKE_SOURCE_DIR}/cmake/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
