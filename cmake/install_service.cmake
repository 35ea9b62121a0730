# Runs at install time (cmake --install, cpack), when CMAKE_INSTALL_PREFIX is the real prefix:
# writes the systemd units for it and installs them and nudge.toml. Set by the caller:
# NUDGE_UNIT_TEMPLATES (config/systemd), NUDGE_CONFIG_FILE, NUDGE_UNIT_DIR (scratch space for the
# units, in the build tree). Included into cmake_install.cmake, so every name here is nudge_*.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(NUDGE_CONFDIR /etc/nudge)
else()
  set(NUDGE_CONFDIR ${CMAKE_INSTALL_PREFIX}/etc/nudge)
endif()
set(NUDGE_BINDIR ${CMAKE_INSTALL_PREFIX}/bin)

# A directory of this run's own: installs for other prefixes may run at the same time (tests).
string(RANDOM LENGTH 12 nudge_run)
set(nudge_unit_dir ${NUDGE_UNIT_DIR}/${nudge_run})
foreach(nudge_unit nudge-api.service nudge-worker@.service)
  configure_file(${NUDGE_UNIT_TEMPLATES}/${nudge_unit}.in ${nudge_unit_dir}/${nudge_unit} @ONLY)
endforeach()
file(INSTALL DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system TYPE FILE
     FILES ${nudge_unit_dir}/nudge-api.service ${nudge_unit_dir}/nudge-worker@.service)
file(REMOVE_RECURSE ${nudge_unit_dir})

# nudge.toml is the admin's once installed: a re-install over an edited copy leaves it alone and
# puts the new defaults beside it. (The .deb has dpkg's conffile handling instead.)
set(nudge_installed_config $ENV{DESTDIR}${NUDGE_CONFDIR}/nudge.toml)
set(nudge_config_name nudge.toml)
if(EXISTS ${nudge_installed_config})
  file(READ ${nudge_installed_config} nudge_installed_text)
  file(READ ${NUDGE_CONFIG_FILE} nudge_new_text)
  if(NOT nudge_installed_text STREQUAL nudge_new_text)
    set(nudge_config_name nudge.toml.new)
    message(STATUS "Kept the edited ${NUDGE_CONFDIR}/nudge.toml; the new defaults are in nudge.toml.new")
  endif()
endif()
file(INSTALL DESTINATION ${NUDGE_CONFDIR} TYPE FILE FILES ${NUDGE_CONFIG_FILE}
     RENAME ${nudge_config_name})
